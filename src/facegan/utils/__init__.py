"""Small helpers shared across facegan: atomic files, images, progress, logging, devices."""
