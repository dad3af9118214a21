"""Analysis of spin textures and trajectories."""
