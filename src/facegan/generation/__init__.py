"""Generation from a trained G: sampling, latents, walks, projection of photos, export, attributes."""
