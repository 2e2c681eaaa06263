-- The authorization code a token was issued from (NULL: client credentials). A code presented
-- again is refused, and every token issued from it is revoked (RFC 6749 section 10.5).
ALTER TABLE oauth_token ADD COLUMN code_hash TEXT REFERENCES oauth_code (code_hash);
CREATE INDEX oauth_token_code ON oauth_token (code_hash) WHERE code_hash IS NOT NULL;

-- A professional registration number stays with one identity document: the check looks the
-- number up at every grant.
CREATE INDEX account_prof_reg_no ON account (role, prof_reg_no) WHERE prof_reg_no IS NOT NULL;
