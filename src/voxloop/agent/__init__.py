"""The conversation: turn detection, streaming reply, history, the per-turn timeline."""
