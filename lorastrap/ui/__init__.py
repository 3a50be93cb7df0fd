"""`lorastrap ui`: a local web page for the human half of the method — curate candidates by view,
watch a round train, read the lineage. A thin layer over the same library functions as the CLI."""
