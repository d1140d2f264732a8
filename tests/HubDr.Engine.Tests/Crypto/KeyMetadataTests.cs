using System.Text;
using HubDr.Engine.Crypto;
using Xunit;

namespace HubDr.Engine.Tests.Crypto;

[Collection("Crypto")]
public class KeyMetadataTests
{
    private readonly CryptoFixture _f;

    public KeyMetadataTests(CryptoFixture f) => _f = f;

    [Fact]
    public void RotationIsRecordedLinkedAndRoundTripsThroughAtomicSave()
    {
        var dir = Directory.CreateTempSubdirectory("hubdr-meta-").FullName;
        try
        {
            var path = Path.Combine(dir, "keys.json");
            var m = KeyMetadata.Load(path);
            Assert.Empty(m.Keys);

            m.Add(_f.Ops.Key);
            m.Add(_f.Ops.Key); // idempotent
            var when = new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);
            m.RecordRotation(_f.Ops.Key.Fingerprint.ToLowerInvariant(), _f.Escrow.Key, when);
            m.Save(path);
            m.Save(path); // overwrite works
            Assert.Single(Directory.GetFiles(dir)); // no temp files left behind

            var back = KeyMetadata.Load(path);
            Assert.Equal(2, back.Keys.Count);
            var old = back.Keys[0];
            var next = back.Keys[1];
            Assert.Equal(_f.Ops.Key.Fingerprint, old.Fingerprint);
            Assert.Equal(_f.Ops.Key.KeyId, old.KeyId);
            Assert.Equal(_f.Ops.Key.AllKeyIds, old.AllKeyIds);
            Assert.Equal("HubDr Ops <ops@example.test>", old.UserId);
            Assert.Equal("RSA 3072", old.Algorithm);
            Assert.Equal(_f.Ops.Key.Created, old.Created);
            Assert.Equal(when, old.Retired);
            Assert.Equal(_f.Escrow.Key.Fingerprint, old.Successor);
            Assert.Null(old.Predecessor);
            Assert.Null(next.Retired);
            Assert.Equal(_f.Ops.Key.Fingerprint, next.Predecessor);
            Assert.Equal("backup", next.Purpose);
            Assert.Equal(new[] { next.Fingerprint }, back.Current.Select(k => k.Fingerprint));

            // No secret material, ever: the JSON holds none of the key blocks nor anything armored.
            var json = Encoding.UTF8.GetString(File.ReadAllBytes(path));
            Assert.DoesNotContain("PGP", json);
            Assert.DoesNotContain(CryptoFixture.OpsPass, json);
            Assert.Contains("\"successor\"", json);

            Assert.Equal(json, Encoding.UTF8.GetString(KeyMetadata.FromJson(back.ToJson()).ToJson()));
            Assert.Equal("KeyMetadataInvalid", Assert.Throws<HubDrException>(() => KeyMetadata.FromJson("{not json"u8)).ErrorId);
            Assert.Equal("KeyNotFound", Assert.Throws<HubDrException>(() => m.RecordRotation(_f.Other.Key.Fingerprint, _f.Ops.Key, when)).ErrorId);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
