-- Care that ends (issue 26, SPEC 3.5): an episode may be planned ahead (its start in the
-- future), may have a planned end, and ends by itself a configured period after its last
-- activity (a deposit by its provider or a recorded attendance; never a read) when no end is
-- recorded or planned. The decision computes the end (core::episode); nothing closes it.
ALTER TABLE care_episode ADD COLUMN planned_end_at TIMESTAMPTZ;
ALTER TABLE care_episode ADD COLUMN last_activity_at TIMESTAMPTZ;

-- A provider's episodes, for its review of those still open.
CREATE INDEX care_episode_hcp ON care_episode (hcp_id, start_at);

-- An unclosed episode's last activity so far: its provider's latest deposit for the recipient
-- since the episode began (a deposit's record version time), so that an episode in use does
-- not end the day this migration runs.
UPDATE care_episode SET last_activity_at = (
    SELECT max(d.updated_at) FROM record d
    WHERE d.recipient_id = care_episode.recipient_id
      AND d.source_hcp = care_episode.hcp_id
      AND d.updated_at >= care_episode.start_at
) WHERE end_at IS NULL;
