"""`lorastrap db`: the registry's schema status, upgrades, backups and integrity check."""
