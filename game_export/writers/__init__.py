"""Engine writers: each turns a `Sheet` into the text of one engine's file format."""
