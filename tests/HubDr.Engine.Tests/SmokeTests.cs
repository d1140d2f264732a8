namespace HubDr.Engine.Tests; public class SmokeTests { [Xunit.Fact] public void EngineLoads() => Xunit.Assert.NotNull(typeof(HubDr.Engine.HubDrException).Assembly); }
