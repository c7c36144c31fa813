package translate

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	weirv1a1 "github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/config"
)

// budgets adds the accepted Budgets to cfg's auth and returns the Budget
// that blocks each blocked team.
func (t *translator) budgets(cfg *config.Config) map[string]string {
	owner := map[weirv1a1.Subject]string{}
	blocked := map[string]string{}
	for _, b := range byAge(t.in.Budgets, func(b *weirv1a1.Budget) *metav1.ObjectMeta { return &b.ObjectMeta }) {
		obj := Object{KindBudget, "", b.Name}
		subj := b.Spec.Subject
		what := string(subj.Kind) + " " + subj.Name
		if subj.Kind == weirv1a1.SubjectGlobal {
			what = "the gateway (Global)"
		}
		if o, ok := owner[subj]; ok {
			t.set(obj, b.Generation, weirv1a1.ConditionAccepted, false, weirv1a1.ReasonConflict,
				fmt.Sprintf("Budget %s, which is older, already sets the limits of %s; one Budget per subject", o, what))
			continue
		}
		lim, err := limits(b.Spec.Limits)
		var ml map[string]config.LimitsConfig
		if err == nil {
			ml, err = modelLimits(b.Spec.ModelLimits)
		}
		if err == nil && subj.Kind == weirv1a1.SubjectGlobal && len(b.Spec.ModelLimits) > 0 {
			err = fmt.Errorf("modelLimits: the gateway-wide budget has no per-model limits in the data plane; set them on teams or keys")
		}
		if err != nil {
			t.set(obj, b.Generation, weirv1a1.ConditionAccepted, false, weirv1a1.ReasonInvalid, err.Error())
			continue
		}
		s := config.SubjectConfig{ID: subj.Name, LimitsConfig: lim, ModelLimits: ml, OrgID: b.Spec.Organization, Models: slices.Clone(b.Spec.Models), Blocked: b.Spec.Blocked}
		if err := validSubject(subj.Kind, s); err != nil {
			t.set(obj, b.Generation, weirv1a1.ConditionAccepted, false, weirv1a1.ReasonInvalid, err.Error())
			continue
		}
		owner[subj] = b.Name
		t.set(obj, b.Generation, weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "limits "+what)
		switch subj.Kind {
		case weirv1a1.SubjectUser:
			cfg.Auth.Users = append(cfg.Auth.Users, s)
		case weirv1a1.SubjectTeam:
			cfg.Auth.Teams = append(cfg.Auth.Teams, s)
			if s.Blocked {
				blocked[s.ID] = b.Name
			}
		case weirv1a1.SubjectOrganization:
			cfg.Auth.Orgs = append(cfg.Auth.Orgs, s)
		case weirv1a1.SubjectGlobal:
			cfg.Auth.Global = &lim
		}
	}
	for _, s := range [][]config.SubjectConfig{cfg.Auth.Users, cfg.Auth.Teams, cfg.Auth.Orgs} {
		slices.SortFunc(s, func(a, b config.SubjectConfig) int { return strings.Compare(a.ID, b.ID) })
	}
	return blocked
}

// validSubject checks a Budget's entry as the data plane will. CEL
// refuses all of this at admission; an object stored before a rule
// existed must still not make the whole config invalid. Budgets are few,
// so each is checked alone.
func validSubject(kind weirv1a1.SubjectKind, s config.SubjectConfig) error {
	c := config.Config{Version: config.Version}
	switch kind {
	case weirv1a1.SubjectUser:
		c.Auth.Users = []config.SubjectConfig{s}
	case weirv1a1.SubjectTeam:
		c.Auth.Teams = []config.SubjectConfig{s}
	case weirv1a1.SubjectOrganization:
		c.Auth.Orgs = []config.SubjectConfig{s}
	case weirv1a1.SubjectGlobal:
		c.Auth.Global = &s.LimitsConfig
	default:
		return fmt.Errorf("subject.kind %q: want User, Team, Organization or Global", kind)
	}
	return c.Validate()
}

// limits converts the CRD's limits; USD strings become float64, as the
// data plane counts spend.
func limits(l weirv1a1.Limits) (config.LimitsConfig, error) {
	out := config.LimitsConfig{BudgetDuration: string(l.BudgetDuration), RPM: l.RPMLimit, TPM: l.TPMLimit, MaxParallel: l.MaxParallelRequests}
	var err error
	if out.MaxBudget, err = usd("maxBudget", l.MaxBudget); err != nil {
		return out, err
	}
	out.SoftBudget, err = usd("softBudget", l.SoftBudget)
	return out, err
}

func usd(field string, v weirv1a1.USD) (float64, error) {
	if v == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f < 0 {
		// CEL's pattern refuses this at admission; an object from before
		// the rule, or written around it, lands here.
		return 0, fmt.Errorf("%s %q: want a non-negative decimal amount of USD", field, v)
	}
	return f, nil
}

func modelLimits(ml []weirv1a1.ModelLimit) (map[string]config.LimitsConfig, error) {
	if len(ml) == 0 {
		return nil, nil
	}
	out := make(map[string]config.LimitsConfig, len(ml))
	for _, m := range ml {
		l, err := limits(m.Limits)
		if err != nil {
			return nil, fmt.Errorf("modelLimits[%s]: %w", m.Model, err)
		}
		out[m.Model] = l
	}
	return out, nil
}
