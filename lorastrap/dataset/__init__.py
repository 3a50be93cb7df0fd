"""Dataset versions (immutable, linear per character), caption policies, and the kohya export."""
