"""Batch transcription (`voxloop transcribe`): files and folders in, one transcript per file out.

files.py finds the audio and where each transcript goes, formats.py writes json/txt/srt/vtt,
engine.py decodes on every core, run.py drives it with a progress bar and a summary.
"""
