//! Hostile input against `securescore scan`: YAML tricks, files, gates, output safety.
