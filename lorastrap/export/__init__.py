"""`lorastrap export sprites` on a workspace: a character's frames → game_export → an `exports` row."""
