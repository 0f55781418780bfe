// Bounds on what an untrusted file may make torchscope read, in one place. Each is well above
// what published models ship (the largest tokenizer.json, Gemma 3's, is 33 MB) and below what
// would hold the process's memory hostage.

/** tokenizer.json: the vocabulary, merges and pipeline of a Hugging Face tokenizer. */
export const MAX_TOKENIZER_JSON_BYTES = 64 * 1024 * 1024;

/** tokenizer_config.json (some list every added token: a few MB). */
export const MAX_TOKENIZER_CONFIG_BYTES = 16 * 1024 * 1024;

/** A chat template (chat_template.jinja, or the one in tokenizer_config.json); real ones are a few KB. */
export const MAX_CHAT_TEMPLATE_BYTES = 1024 * 1024;
