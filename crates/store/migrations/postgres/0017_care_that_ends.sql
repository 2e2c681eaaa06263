-- Care that ends (issue 26, SPEC 3.5): an episode may be planned ahead (its start in the
-- future), may have a planned end, and ends by itself a configured period after its last
-- activity (a deposit by its provider or a recorded attendance; never a read) when no end is
-- recorded or planned. The decision computes the end (core::episode); nothing closes it.
ALTER TABLE care_episode ADD COLUMN planned_end_at TIMESTAMPTZ;
ALTER TABLE care_episode ADD COLUMN last_activity_at TIMESTAMPTZ;

-- A provider's episodes, for its review of those still open.
CREATE INDEX care_episode_hcp ON care_episode (hcp_id, start_at);
