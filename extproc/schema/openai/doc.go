// Package openai is OpenAI's chat completion wire format as Weir's
// translators read and write it: the usage object, and one reader of a
// request's messages, content parts and tool calls that every translator
// to another format (Anthropic Messages, Gemini contents, Bedrock
// Converse) walks instead of its own copy. It imports no translator.
package openai
