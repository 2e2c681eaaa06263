-- The account holder's identity document (SPEC 3.9: reading one's own or a colleague's record
-- raises an alert). Optional: a provider's user administrator records it with the account;
-- the rule applies to the accounts that have one. Canonical form as `recipient`'s columns.
ALTER TABLE account ADD COLUMN doc_type TEXT;
ALTER TABLE account ADD COLUMN doc_issuer TEXT;
ALTER TABLE account ADD COLUMN doc_number TEXT;

CREATE INDEX account_document ON account (doc_type, doc_issuer, doc_number);
