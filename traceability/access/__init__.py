"""Who may see and do what: asked by every interface, decided here only."""
