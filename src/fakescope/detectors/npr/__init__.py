"""NPR detector (Tan et al. CVPR 2024): neighbouring-pixel-relation residual + a small CNN."""
