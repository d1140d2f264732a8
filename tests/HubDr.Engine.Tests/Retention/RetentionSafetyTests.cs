using HubDr.Engine.Retention;
using Xunit;
using static HubDr.Engine.Tests.Retention.RetentionPlannerTests;

namespace HubDr.Engine.Tests.Retention;

public sealed class RetentionSafetyTests
{
    private static readonly RetentionCandidate[] Three =
    [
        C("2026-11-20T02:00:00Z", "newest-bad-signature"),
        C("2026-11-19T02:00:00Z", "valid"),
        C("2026-11-18T02:00:00Z", "older"),
    ];

    [Fact]
    public void EmptyPolicyIsRefused()
    {
        var plan = RetentionPlanner.Plan(Three, new RetentionPolicy());
        var ex = Assert.Throws<HubDrException>(() => RetentionSafety.Apply(plan, "valid"));
        Assert.Equal("RetentionPolicyEmpty", ex.ErrorId);
        Assert.Equal(HubErrorCategory.InvalidArgument, ex.Category);
        Assert.Contains("Nothing was removed", ex.Message);

        ex = Assert.Throws<HubDrException>(() => RetentionSafety.PlanSafely(Three, new RetentionPolicy { KeepDaily = 0 }, null));
        Assert.Equal("RetentionPolicyEmpty", ex.ErrorId);

        var hand = plan.ToList(); // not a RetentionPlan: the explicit-policy overload still refuses
        ex = Assert.Throws<HubDrException>(() => RetentionSafety.Apply(hand, new RetentionPolicy(), null));
        Assert.Equal("RetentionPolicyEmpty", ex.ErrorId);
    }

    [Fact]
    public void NewestValidBackupIsNeverRemoved()
    {
        var plan = RetentionPlanner.Plan(Three, new RetentionPolicy { KeepLast = 1 });
        Assert.Equal([true, false, false], plan.Select(d => d.Keep));

        var safe = RetentionSafety.Apply(plan, "valid");
        Assert.Equal([true, true, false], safe.Select(d => d.Keep));
        Assert.Equal(["last snapshot"], safe[0].Reasons);
        Assert.Equal([RetentionSafety.NewestValidReason], safe[1].Reasons);
        Assert.Equal("newest valid backup", safe[1].Reasons[0]);
        Assert.Empty(safe[2].Reasons);

        // The input plan is untouched.
        Assert.False(plan[1].Keep);
        Assert.Empty(plan[1].Reasons);
    }

    [Fact]
    public void NewestValidReasonIsAddedWhenAlreadyKept()
    {
        var plan = RetentionPlanner.Plan(Three, new RetentionPolicy { KeepLast = 2 });
        var safe = RetentionSafety.Apply(plan, "valid");
        Assert.Equal(["last snapshot", RetentionSafety.NewestValidReason], safe[1].Reasons);
        Assert.Equal(2, safe.Count(d => d.Keep));

        // Applying twice changes nothing.
        var twice = RetentionSafety.Apply(safe, "valid");
        Assert.Equal(safe.Select(d => string.Join("|", d.Reasons)), twice.Select(d => string.Join("|", d.Reasons)));
    }

    [Fact]
    public void NeverRemovesEveryBackupOfTheGroup()
    {
        // A tag rule that matches nothing would remove all three.
        var plan = RetentionPlanner.Plan(Three.Reverse(), new RetentionPolicy { KeepTags = ["monthly-archive"] });
        Assert.All(plan, d => Assert.False(d.Keep));

        var safe = RetentionSafety.Apply(plan, newestValidId: null);
        Assert.Equal([true, false, false], safe.Select(d => d.Keep));
        Assert.Equal("newest-bad-signature", safe[0].Candidate.Id);
        Assert.Equal([RetentionSafety.NeverRemoveAllReason], safe[0].Reasons);

        // With a newest valid backup, that one is kept instead and nothing else needs rescuing.
        safe = RetentionSafety.Apply(plan, "valid");
        Assert.Equal([false, true, false], safe.Select(d => d.Keep));
        Assert.Equal([RetentionSafety.NewestValidReason], safe[1].Reasons);

        // Unknown id: ignored, the never-remove-all rule still applies.
        safe = RetentionSafety.Apply(plan, "not-in-this-group");
        Assert.Equal([true, false, false], safe.Select(d => d.Keep));

        Assert.Empty(RetentionSafety.Apply(RetentionPlanner.Plan([], RetentionPolicy.RunbookDefault), null));
    }

    [Fact]
    public void PlanSafelyCombinesBothLayers()
    {
        var safe = RetentionSafety.PlanSafely(Three, new RetentionPolicy { KeepWithin = RetentionDuration.Parse("1h") }, "valid");
        Assert.Equal([["within 1h"], [RetentionSafety.NewestValidReason], []], safe.Select(d => d.Reasons.ToArray()));
    }
}
