"""Spectral detector (Durall et al. 2019): azimuthal log spectrum + a linear or k-means model."""
