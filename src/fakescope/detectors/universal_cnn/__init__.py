"""Universal CNN detector (Wang et al. 2020): ImageNet CNN fine-tuned to spot generated images."""
