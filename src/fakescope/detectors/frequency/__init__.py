"""Frequency detector after F3-Net (Qian et al. ECCV 2020): FAD + LFS streams, fused."""
