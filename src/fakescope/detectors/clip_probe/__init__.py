"""CLIP probe detector (UnivFD, Ojha et al. 2023): logistic or k-NN head on frozen CLIP features."""
