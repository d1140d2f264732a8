using System.Collections;

namespace HubDr.Engine.Retention;

/// <summary>One backup of a group, as far as retention is concerned.</summary>
/// <param name="Id">Stable backup id; ties between equal times are broken by ordinal Id order.</param>
/// <param name="Time">When the backup was taken (any offset; compared as an instant).</param>
public sealed record RetentionCandidate(string Id, DateTimeOffset Time)
{
    /// <summary>Tags used by <see cref="RetentionPolicy.KeepTags"/>.</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];
}

/// <summary>The verdict for one candidate. Kept candidates have one or more human-readable reasons;
/// removed candidates have none.</summary>
public sealed record RetentionDecision(RetentionCandidate Candidate, bool Keep, IReadOnlyList<string> Reasons);

/// <summary>
/// The list returned by <see cref="RetentionPlanner.Plan(IEnumerable{RetentionCandidate}, RetentionPolicy)"/>:
/// one decision per candidate, newest first, remembering the policy it was made with so that
/// <see cref="RetentionSafety"/> can refuse an empty policy.
/// </summary>
public sealed class RetentionPlan : IReadOnlyList<RetentionDecision>
{
    private readonly RetentionDecision[] _decisions;

    internal RetentionPlan(RetentionDecision[] decisions, RetentionPolicy policy, DateTimeOffset? referenceTime)
    {
        _decisions = decisions;
        Policy = policy;
        ReferenceTime = referenceTime;
    }

    /// <summary>The policy the plan was made with.</summary>
    public RetentionPolicy Policy { get; }

    /// <summary>The newest backup's time, from which all "within" windows were measured (null when there were no candidates,
    /// or when every candidate was later than the supplied "now").</summary>
    public DateTimeOffset? ReferenceTime { get; }

    public int Count => _decisions.Length;

    public RetentionDecision this[int index] => _decisions[index];

    /// <summary>The decisions that keep their backup, newest first.</summary>
    public IEnumerable<RetentionDecision> Kept => _decisions.Where(d => d.Keep);

    /// <summary>The decisions that remove their backup, newest first.</summary>
    public IEnumerable<RetentionDecision> Removed => _decisions.Where(d => !d.Keep);

    public IEnumerator<RetentionDecision> GetEnumerator() => ((IEnumerable<RetentionDecision>)_decisions).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => _decisions.GetEnumerator();
}
