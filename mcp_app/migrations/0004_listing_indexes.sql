-- list_todos walks this index in its order (soonest due, most urgent, oldest, id) and stops after
-- one page, instead of sorting all of a user's todos per call (bench part 5: linear in the rows
-- before). The expressions are exactly the ORDER BY of mcp_app/tools/todos.py (_SORT); the
-- row-level-security qual on owner_id is the index condition.
CREATE INDEX todos_listing_idx ON todos (
    owner_id,
    (coalesce(due_date, 'infinity'::date)),
    (array_position(ARRAY['urgent','high','medium','low'], priority)),
    created_at,
    id
);
