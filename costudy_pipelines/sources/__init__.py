"""One folder per source (client, records, spec, defs, sandbox); `registry` loads the folders
that sources.toml lists and checks each is complete."""
