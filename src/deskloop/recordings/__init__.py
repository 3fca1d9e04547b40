"""Demonstrations: a person's actions recorded as element-level steps, and their replay.

`recording` is the step file (what a person reads and edits); recording, replay and healing
build on it. Healing goes through a `Healer` the caller passes in (the agent, the
scheduler), so nothing here imports the floors above.
"""
