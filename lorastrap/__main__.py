"""`python -m lorastrap …` runs the CLI (where the console script is not on PATH)."""

from lorastrap.cli import main

if __name__ == "__main__":
    main()
