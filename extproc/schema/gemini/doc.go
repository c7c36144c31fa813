// Package gemini is the Gemini API's wire format (generateContent,
// streamGenerateContent, embedContent, batchEmbedContents and Google's
// error body) as Weir speaks it: OpenAI chat completion and embeddings
// requests become Gemini bodies, and Gemini responses, streams and errors
// become OpenAI's. It is shared by the translators that carry the format:
// Gemini (AI Studio) itself and Vertex AI's publishers/google models.
// Paths, credentials and headers stay with those translators; this package
// knows only bodies, so it imports no translator.
//
// The mapping is documented on extproc/provider/gemini. Thought
// signatures ride inside OpenAI tool call ids after [SigSep].
//
// The clock is the caller's: responses and streams take their "created"
// time as an argument, so the package holds no state.
package gemini
