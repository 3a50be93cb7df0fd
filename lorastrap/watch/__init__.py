"""`lorastrap watch`: watchdog observers, settling, the inbox, and what a settled change enqueues."""
