package sensorhub

import "fmt"

// CheckStation returns an error when id is not a valid station id of the
// message contract, ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$, for tools that
// take station ids from users.
func CheckStation(id string) error {
	if !stationName.match(id) {
		return fmt.Errorf("station %.80q does not match %s", id, stationName)
	}
	return nil
}

// CheckSensor returns an error when name is not a valid sensor type name,
// ^[a-z][a-z0-9_]{0,63}$, for tools that take sensor names from users.
func CheckSensor(name string) error {
	if !sensorName.match(name) {
		return fmt.Errorf("sensor %.80q does not match %s", name, sensorName)
	}
	return nil
}
