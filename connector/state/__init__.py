"""The state database: cursors, timeline, decisions, what was written, routing turns, audit."""
