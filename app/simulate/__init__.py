"""`frontdesk simulate`: a call through the full audio pipeline with a synthetic caller, no browser."""
