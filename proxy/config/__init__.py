"""Configuration: YAML in, frozen Settings out, every problem named by its key path."""
