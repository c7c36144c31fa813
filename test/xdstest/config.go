package xdstest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/weir-ai/weir/config"
)

// KeyHash is the hex SHA-256 of a virtual key, as config stores it.
func KeyHash(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// LargeConfig is a valid config of the scale the issue budgets: backends
// backends with one model each, and keys virtual keys (key "sk-weir-N"),
// each with a team, limits and models as a controller would set them.
func LargeConfig(backends, keys int) *config.Config {
	c := &config.Config{
		Version: config.Version,
		Auth:    config.Auth{Mode: "keys"},
	}
	for i := range backends {
		name := fmt.Sprintf("backend-%04d", i)
		c.Backends = append(c.Backends, config.Backend{
			Name:       name,
			Provider:   "openai",
			BaseURL:    fmt.Sprintf("https://%s.models.example.com/v1", name),
			Credential: &config.Credential{Value: config.Secret(fmt.Sprintf("sk-provider-%04d-0123456789abcdef", i)), Key: config.Secret(fmt.Sprintf("sk-provider-%04d-0123456789abcdef", i))},
		})
		c.Models = append(c.Models, config.Model{
			Name:     fmt.Sprintf("team-%d/model-%04d", i%50, i),
			Backends: []string{name},
		})
	}
	for i := range keys {
		c.Auth.Keys = append(c.Auth.Keys, config.KeyConfig{
			Hash:     KeyHash(fmt.Sprintf("sk-weir-%d", i)),
			Alias:    fmt.Sprintf("app-%d", i),
			LimitsID: fmt.Sprintf("5f1c2d3e-0000-4000-8000-%012d", i),
			TeamID:   fmt.Sprintf("team-%d", i%50),
			Models:   []string{fmt.Sprintf("team-%d/*", i%50)},
			LimitsConfig: config.LimitsConfig{
				MaxBudget: 100, BudgetDuration: "30d", RPM: 600,
			},
		})
	}
	return c
}
