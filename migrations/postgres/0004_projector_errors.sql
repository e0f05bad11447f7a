-- Why a projector's runner keeps failing (a commit the database refuses, an unreachable
-- store...), written by the runner and cleared by its next successful commit, so that every
-- node and the CLI can report it.
ALTER TABLE projector_checkpoints ADD COLUMN last_error text, ADD COLUMN last_error_at timestamptz;
