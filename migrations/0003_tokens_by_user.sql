-- Sessions: revoking every token of a user (password change, ban) and
-- deleting a user's expired tokens at sign-in find them by user.
CREATE INDEX tokens_user ON tokens(user_id, created_at);
