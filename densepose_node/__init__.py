"""Video to DensePose motion sequences, as vid2densepose renders them, without ComfyUI."""
