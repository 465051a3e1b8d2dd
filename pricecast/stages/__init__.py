"""The pipeline's pure stages: arrays and frames in, arrays, frames, models and figures out."""
