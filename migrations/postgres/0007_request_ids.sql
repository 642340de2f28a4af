-- The request's x-request-id on its usage row; NULL on rows written before it.
ALTER TABLE usage ADD COLUMN request_id TEXT;
