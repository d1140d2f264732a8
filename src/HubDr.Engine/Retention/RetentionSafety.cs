namespace HubDr.Engine.Retention;

/// <summary>
/// The safety layer Remove-ExpiredHubBackup puts between the pure restic-compatible plan and any deletion.
/// It only ever turns "remove" into "keep", never the other way round.
/// </summary>
public static class RetentionSafety
{
    /// <summary>Reason added to the newest successful, signature-valid backup.</summary>
    public const string NewestValidReason = "newest valid backup";

    /// <summary>Reason added when the plan would otherwise remove every backup of the group.</summary>
    public const string NeverRemoveAllReason = "never remove all backups";

    /// <summary>
    /// Applies the safety rules to a plan from <see cref="RetentionPlanner.Plan(IEnumerable{RetentionCandidate}, RetentionPolicy)"/>:
    /// refuses a plan made with an empty policy; always keeps <paramref name="newestValidId"/> (the newest successful,
    /// signature-valid backup; ignored when null or not in the plan); and never removes every backup of the group
    /// (keeps the newest). Returns a new plan, newest first; the input is not modified.
    /// </summary>
    /// <exception cref="HubDrException">"RetentionPolicyEmpty" (InvalidArgument) when the plan's policy is empty.</exception>
    public static IReadOnlyList<RetentionDecision> Apply(IReadOnlyList<RetentionDecision> plan, string? newestValidId)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var policy = (plan as RetentionPlan)?.Policy;
        if (policy is not null && policy.IsEmpty)
        {
            throw EmptyPolicy();
        }

        var decisions = new RetentionDecision[plan.Count];
        for (var i = 0; i < plan.Count; i++)
        {
            decisions[i] = plan[i] ?? throw new ArgumentException("The plan contains a null decision.", nameof(plan));
        }

        if (newestValidId is not null)
        {
            for (var i = 0; i < decisions.Length; i++)
            {
                if (string.Equals(decisions[i].Candidate.Id, newestValidId, StringComparison.Ordinal))
                {
                    decisions[i] = WithReason(decisions[i], NewestValidReason);
                }
            }
        }

        if (decisions.Length > 0 && !decisions.Any(d => d.Keep))
        {
            var newest = 0;
            for (var i = 1; i < decisions.Length; i++)
            {
                var a = decisions[i].Candidate;
                var b = decisions[newest].Candidate;
                if (a.Time > b.Time || (a.Time == b.Time && string.CompareOrdinal(a.Id, b.Id) < 0))
                {
                    newest = i;
                }
            }

            decisions[newest] = WithReason(decisions[newest], NeverRemoveAllReason);
        }

        return new RetentionPlan(decisions, policy ?? new RetentionPolicy(), (plan as RetentionPlan)?.ReferenceTime);
    }

    /// <summary>
    /// As <see cref="Apply(IReadOnlyList{RetentionDecision}, string?)"/>, with the policy given explicitly
    /// (for plans that did not come straight from the planner).
    /// </summary>
    public static IReadOnlyList<RetentionDecision> Apply(IReadOnlyList<RetentionDecision> plan, RetentionPolicy policy, string? newestValidId)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (policy.IsEmpty)
        {
            throw EmptyPolicy();
        }

        return Apply(plan, newestValidId);
    }

    /// <summary>Convenience: validate, plan and apply the safety rules in one call.</summary>
    public static IReadOnlyList<RetentionDecision> PlanSafely(IEnumerable<RetentionCandidate> candidates, RetentionPolicy policy, string? newestValidId)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (policy.IsEmpty)
        {
            throw EmptyPolicy();
        }

        return Apply(RetentionPlanner.Plan(candidates, policy), newestValidId);
    }

    private static RetentionDecision WithReason(RetentionDecision d, string reason)
    {
        if (d.Reasons.Contains(reason))
        {
            return d with { Keep = true };
        }

        return d with { Keep = true, Reasons = [.. d.Reasons, reason] };
    }

    private static HubDrException EmptyPolicy() =>
        new("RetentionPolicyEmpty", HubErrorCategory.InvalidArgument,
            "The retention policy is empty (no keep rule is set), so every backup would be removed. Nothing was removed. " +
            "Give at least one rule, e.g. the runbook default (daily 14 days, weekly 12 weeks, monthly 12 months).");
}
