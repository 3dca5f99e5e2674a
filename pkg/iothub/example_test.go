package iothub_test

import (
	"errors"
	"fmt"

	"github.com/hubkit/hubkit/pkg/iothub"
)

func ExampleParseUserName() {
	u, err := iothub.ParseUserName("contoso.azure-devices.net/dev1/?api-version=2020-09-30" +
		"&DeviceClientType=iothubclient%2f1.9.0%20(native%3b%20Linux%3b%20aarch64)")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(u.Host, u.Identity, u.APIVersion, u.Form)
	fmt.Println(u.DeviceClientType)
	// Output:
	// contoso.azure-devices.net dev1 2020-09-30 query
	// iothubclient/1.9.0 (native; Linux; aarch64)
}

func ExampleParseUserName_legacy() {
	for _, s := range []string{
		"contoso.azure-devices.net/dev1/api-version=2016-11-14",
		"contoso.azure-devices.net/dev1/mod1",
		"contoso.azure-devices.net/dev1/?api-version=2021-4-12",
	} {
		u, err := iothub.ParseUserName(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s %q %s\n", u.Identity, u.APIVersion, u.Form)
	}
	// Output:
	// dev1 "2016-11-14" legacy-no-question-mark
	// dev1/mod1 "" bare
	// iothub: invalid user name "contoso.azure-devices.net/dev1/?api-version=2021-4-12": api-version "2021-4-12" is not a date (expected YYYY-MM-DD or YYYY-MM-DD-preview, e.g. 2021-04-12)
}

func ExampleUserName_String() {
	u := iothub.UserName{
		Host:             "contoso.azure-devices.net",
		Identity:         iothub.Identity{DeviceID: "dev1", ModuleID: "mod1"},
		APIVersion:       iothub.DefaultAPIVersion,
		DeviceClientType: "hubkit/0.1",
	}
	fmt.Println(u)
	// Output: contoso.azure-devices.net/dev1/mod1/?api-version=2021-04-12&DeviceClientType=hubkit%2F0.1
}

func ExampleParseClientID() {
	for _, s := range []string{"dev1", "dev1/mod1", "dev+1"} {
		id, err := iothub.ParseClientID(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("device=%q module=%q module?=%v\n", id.DeviceID, id.ModuleID, id.IsModule())
	}
	// Output:
	// device="dev1" module="" module?=false
	// device="dev1" module="mod1" module?=true
	// iothub: invalid device ID "dev+1": character '+' at position 4 is not allowed (allowed: ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ ')
}

func ExampleParseProperties() {
	p, _ := iothub.ParseProperties("%24.mid=m1&$.ct=application%2Fjson&flag&empty=&temp=21+1")
	for _, prop := range p {
		fmt.Printf("%q=%q null=%v\n", prop.Key, prop.Value, prop.Null)
	}
	fmt.Println(p.System())
	fmt.Println(p.Application())
	fmt.Println(p.Encode())
	// Output:
	// "$.mid"="m1" null=false
	// "$.ct"="application/json" null=false
	// "flag"="" null=true
	// "empty"="" null=false
	// "temp"="21+1" null=false
	// map[$.ct:application/json $.mid:m1]
	// map[empty: flag: temp:21+1]
	// %24.mid=m1&%24.ct=application%2Fjson&flag&empty=&temp=21%2B1
}

func ExampleTelemetryTopic() {
	id := iothub.Identity{DeviceID: "dev1"}
	topic := iothub.TelemetryTopic(id, iothub.Properties{
		{Key: iothub.PropContentType, Value: "application/json"},
		{Key: iothub.PropContentEncoding, Value: "utf-8"},
		{Key: "alert", Value: "high temp"},
	})
	fmt.Println(topic)
	gotID, props, _ := iothub.ParseTelemetryTopic(topic)
	fmt.Println(gotID, props.Application())
	// Output:
	// devices/dev1/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8&alert=high%20temp
	// dev1 map[alert:high temp]
}

func ExampleParseC2DTopic() {
	// As captured from the hub (docs/iothub-behavior.md §4.2).
	id, props, err := iothub.ParseC2DTopic("devices/pubsub/messages/devicebound/%24.mid=2c2db32a&%24.to=%2Fdevices%2Fpubsub%2Fmessages%2Fdevicebound&%24.ce=utf-8&iothub-ack=none")
	fmt.Println(id, err)
	fmt.Println(props.System())
	// Output:
	// pubsub <nil>
	// map[$.ce:utf-8 $.mid:2c2db32a $.to:/devices/pubsub/messages/devicebound iothub-ack:none]
}

func ExampleTwinResponseTopic() {
	fmt.Println(iothub.TwinGetTopic("1"))
	fmt.Println(iothub.TwinResponseTopic(iothub.StatusOK, "1", 0))
	fmt.Println(iothub.TwinPatchReportedTopic("2"))
	fmt.Println(iothub.TwinResponseTopic(iothub.StatusNoContent, "2", 2))
	status, rid, version, _ := iothub.ParseTwinResponseTopic("$iothub/twin/res/204/?$rid=2&$version=2")
	fmt.Println(status, rid, version)
	// Output:
	// $iothub/twin/GET/?$rid=1
	// $iothub/twin/res/200/?$rid=1
	// $iothub/twin/PATCH/properties/reported/?$rid=2
	// $iothub/twin/res/204/?$rid=2&$version=2
	// 204 2 2
}

func ExampleParseMethodRequestTopic() {
	name, rid, _ := iothub.ParseMethodRequestTopic("$iothub/methods/POST/reboot/?$rid=1f")
	fmt.Println(name, rid)
	fmt.Println(iothub.MethodResponseTopic(200, rid))
	// Output:
	// reboot 1f
	// $iothub/methods/res/200/?$rid=1f
}

func ExampleClassifyPublish() {
	self := iothub.Identity{DeviceID: "dev1"}
	for _, topic := range []string{
		"devices/dev1/messages/events/%24.mid=1",
		"$iothub/twin/GET/?$rid=7",
		"devices/dev2/messages/events/",
		"$iothub/twin/PATCH/properties/reported/",
	} {
		p, err := iothub.ClassifyPublish(self, topic)
		var te *iothub.TopicError
		if errors.As(err, &te) {
			fmt.Printf("rejected (%s): %v\n", te.Rule, err)
			continue
		}
		fmt.Printf("%s rid=%q\n", p.Kind, p.RID)
	}
	// Output:
	// telemetry rid=""
	// twin-get rid="7"
	// rejected (other-identity): topic "devices/dev2/messages/events/": publish to another device's topic: devices/dev2/... but this connection is device dev1
	// rejected (missing-rid): topic "$iothub/twin/PATCH/properties/reported/": twin PATCH reported without $rid: expected $iothub/twin/PATCH/properties/reported/?$rid={rid}
}

func ExampleClassifySubscribe() {
	self := iothub.Identity{DeviceID: "dev1"}
	for _, filter := range []string{
		"devices/+/messages/devicebound/#",
		iothub.TwinResponseFilter,
		"devices/dev1/messages/devicebound/alerts/#",
		"$iothub/#",
	} {
		kind, err := iothub.ClassifySubscribe(self, filter)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(kind)
	}
	// Output:
	// c2d-filter
	// twin-response-filter
	// topic "devices/dev1/messages/devicebound/alerts/#": C2D filter must end in /# (sub-topic filtering is not supported): expected devices/dev1/messages/devicebound/#
	// topic "$iothub/#": unknown $iothub topic filter: a device may subscribe to $iothub/twin/res/#, $iothub/twin/PATCH/properties/desired/# and $iothub/methods/POST/#
}
