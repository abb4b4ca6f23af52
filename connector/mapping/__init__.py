"""Mapping files (YAML) -> typed, validated models. Pure: reads files, no network."""
