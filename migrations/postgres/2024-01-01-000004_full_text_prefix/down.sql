-- Nothing to undo: the prefix index is the index of migration 000003, whose down drops it.
SELECT 1;
