"""tubewatch's services: fetcher, indexer, api and the YouTube emulator, with their shared contracts in common."""
