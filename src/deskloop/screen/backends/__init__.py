"""Per-platform backends that read windows into `NodeData` and perform actions."""
