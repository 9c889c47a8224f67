ALTER FUNCTION memgpt_text_words(text) COST 100;
