"""Media at the pack's edges, shared by both libraries and the nodes: frames, images, fitting, video files."""
