// Chat templates: the Jinja template a model ships in tokenizer_config.json (or
// chat_template.jinja), rendered by @huggingface/jinja with the variables transformers'
// apply_chat_template passes (messages, tools, documents, add_generation_prompt, the special
// tokens by role, the caller's extra variables; raise_exception and strftime_now are built in).
import { Template } from '@huggingface/jinja';

import { CallSite, failure } from '../core/errors';
import { array, boolean, checkOptions, describeValue, isRecord, optionKeys, string } from '../core/validate';

/** One message of a conversation: a role ('system', 'user', 'assistant', 'tool'...) and its content, as transformers takes them. */
export interface ChatMessage {
  role: string;
  /** Text, or the list of parts (`{ type: 'text', text }`...) that multimodal templates read. */
  content?: unknown;
  /** Anything else the template reads (tool_calls, name...). */
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** End with the header of the assistant's turn, so that generation continues as the model. Default false. */
  addGenerationPrompt?: boolean;
  /** Return the Encoding of the rendered text (special tokens not added again: the template wrote them) instead of the text. Default false. */
  tokenize?: boolean;
  /** Tool descriptions (JSON schemas) for templates that read `tools`. */
  tools?: unknown[];
  /** Documents for retrieval-augmented templates that read `documents`. */
  documents?: unknown[];
  /**
   * The template's name when the tokenizer has several (transformers' list of named templates).
   * Default: 'tool_use' when tools are given and there is one, else 'default'.
   */
  templateName?: string;
  /** More variables for the template (as transformers' extra keyword arguments), e.g. { enable_thinking: false }. */
  variables?: Record<string, unknown>;
}

export const CHAT_TEMPLATE_KEYS = optionKeys<ChatTemplateOptions>({
  addGenerationPrompt: true,
  tokenize: true,
  tools: true,
  documents: true,
  templateName: true,
  variables: true,
});

/** A tokenizer's chat templates, compiled on first use (a template the engine cannot parse fails only applyChatTemplate). */
export class ChatTemplates {
  private readonly compiled = new Map<string, Template>();

  constructor(private readonly source: string | Record<string, string> | undefined) {}

  /** Checks the options and renders `messages`; `specials` are the special tokens by role (bos_token...). */
  render(messages: readonly ChatMessage[], given: ChatTemplateOptions | undefined, specials: Record<string, string>, site: CallSite): string {
    const options = checkOptions(given, CHAT_TEMPLATE_KEYS, 'applyChatTemplate', site);
    array(messages, 'messages', site);
    messages.forEach((message, i) => {
      if (!isRecord(message) || typeof message.role !== 'string') {
        throw failure('INVALID_ARGUMENT', `messages[${i}] must be an object with a string role, got ${describeValue(message)}`, site);
      }
    });
    const addGenerationPrompt = boolean(options.addGenerationPrompt ?? false, 'addGenerationPrompt', site);
    if (options.tools !== undefined) array(options.tools, 'tools', site);
    if (options.documents !== undefined) array(options.documents, 'documents', site);
    if (options.variables !== undefined && !isRecord(options.variables)) {
      throw failure('INVALID_ARGUMENT', `variables must be an object, got ${describeValue(options.variables)}`, site);
    }
    const template = this.template(options, site);
    try {
      // As transformers: the special tokens, then the caller's variables, then the call's own.
      return template.render({
        ...specials,
        ...options.variables,
        messages,
        tools: options.tools ?? null,
        documents: options.documents ?? null,
        add_generation_prompt: addGenerationPrompt,
      });
    } catch (error) {
      throw failure('INVALID_ARGUMENT', `chat template: ${(error as Error).message}`, site);
    }
  }

  private template(options: ChatTemplateOptions, site: CallSite): Template {
    const source = this.source;
    if (source === undefined) throw failure('INVALID_ARGUMENT', 'this tokenizer has no chat template (give chatTemplate when loading it)', site);
    let name = 'default';
    let text: string | undefined;
    if (typeof source === 'string') {
      if (options.templateName !== undefined && options.templateName !== 'default') {
        throw failure('INVALID_ARGUMENT', `this tokenizer has one chat template, not one named '${options.templateName}'`, site);
      }
      text = source;
    } else {
      name =
        options.templateName !== undefined ? string(options.templateName, 'templateName', site) : options.tools && source.tool_use ? 'tool_use' : 'default';
      text = Object.hasOwn(source, name) ? source[name] : undefined;
      if (text === undefined) throw failure('INVALID_ARGUMENT', `no chat template named '${name}'; the tokenizer has: ${Object.keys(source).join(', ')}`, site);
    }
    let template = this.compiled.get(name);
    if (!template) {
      try {
        template = new Template(text);
      } catch (error) {
        throw failure('INVALID_ARGUMENT', `chat template '${name}' cannot be parsed: ${(error as Error).message}`, site);
      }
      this.compiled.set(name, template);
    }
    return template;
  }
}
