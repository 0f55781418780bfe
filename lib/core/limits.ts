// Bounds on what an untrusted file may make torchscope read, in one place. Each is well above
// what published models ship (the largest tokenizer.json, Gemma 3's, is 33 MB) and below what
// would hold the process's memory hostage.

/** tokenizer.json: the vocabulary, merges and pipeline of a Hugging Face tokenizer. */
export const MAX_TOKENIZER_JSON_BYTES = 64 * 1024 * 1024;

/** tokenizer_config.json (some list every added token: a few MB). */
export const MAX_TOKENIZER_CONFIG_BYTES = 16 * 1024 * 1024;

/** A chat template (chat_template.jinja, or the one in tokenizer_config.json); real ones are a few KB. */
export const MAX_CHAT_TEMPLATE_BYTES = 1024 * 1024;

/** A safetensors header (the JSON before the data): the reference library (safetensors) refuses above 100,000,000 bytes too. */
export const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;

/** An SAE's cfg.json (SAELens, sparsify): a few KB. */
export const MAX_SAE_CONFIG_BYTES = 1024 * 1024;

/** A .npy header: numpy's own default bound (np.load's max_header_size). */
export const MAX_NPY_HEADER_BYTES = 10_000;

/** Arrays in an .npz (Gemma Scope's params.npz holds five). */
export const MAX_NPZ_ENTRIES = 64;

/** One SAE tensor. The largest published, Gemma Scope 27B's 1M-feature encoder, is 19 GB in float32. */
export const MAX_SAE_TENSOR_BYTES = 32 * 1024 * 1024 * 1024;
