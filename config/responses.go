package config

import "fmt"

// Responses configures what Weir lets through of the OpenAI Responses
// API's server-side state. A stored response lives in the provider account
// that every key shares, so a response id is an object any key could name.
// previous_response_id is therefore refused unless a model enables it
// ([Model.StoredResponses]); then Weir hands clients response ids bound
// to their key (an HMAC keyed by IDSecret) and takes back only ids bound
// to the key that sends them.
type Responses struct {
	// IDSecret keys the HMAC that binds response ids to keys. Every
	// replica needs the same value, so an id issued by one is honoured by
	// all; changing it invalidates every id issued before. At least
	// [MinIDSecret] bytes; required when a model enables stored_responses.
	IDSecret Secret `yaml:"id_secret,omitempty" json:"id_secret,omitempty"`
}

// MinIDSecret is the shortest [Responses.IDSecret] accepted: 32 bytes, the
// HMAC-SHA256 block's half, as random as the operator can make it.
const MinIDSecret = 32

func (c *Config) validateResponses(v *validator) {
	if n := len(c.Responses.IDSecret); n > 0 && n < MinIDSecret {
		v.addf("responses.id_secret", "must be at least %d bytes, got %d", MinIDSecret, n)
	}
	for i := range c.Models {
		if c.Models[i].StoredResponses && c.Responses.IDSecret == "" {
			v.addf(fmt.Sprintf("models[%d].stored_responses", i), "needs responses.id_secret, which binds response ids to keys")
		}
	}
}
